"""Ready-made features and segments of the edtech pack, written in segql."""

LIBRARY = """
feature math_level "Math skill level: tertiles of the math_score percentile rank" =
    edtech.skill_level(subject: "math", score: math_score)
feature reading_level "Reading skill level: tertiles of the reading_score percentile rank" =
    edtech.skill_level(subject: "reading", score: reading_score)
feature preferred_format "Dominant content format (video / reading / interactive / blended)" =
    edtech.learning_style()

segment advanced_math "Top third of math scores (percentile rank above 200/3)" =
    math_level = "advanced"
segment struggling_math "Bottom third of math scores (percentile rank below 100/3)" =
    math_level = "beginner"
segment advanced_readers "Top third of reading scores (percentile rank above 200/3)" =
    reading_level = "advanced"
segment struggling_readers "Bottom third of reading scores (percentile rank below 100/3)" =
    reading_level = "beginner"
segment needs_support "Bottom third in math or in reading" =
    struggling_math or struggling_readers

segment video_learners "At least half of consumed minutes are video" =
    preferred_format = "video"
segment reading_learners "At least half of consumed minutes are reading" =
    preferred_format = "reading"
segment interactive_learners "At least half of consumed minutes are interactive" =
    preferred_format = "interactive"
segment blended_learners "Active, but no format takes half of the minutes (or a tie for the most)" =
    preferred_format = "blended"
"""
