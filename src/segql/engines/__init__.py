"""The engines that evaluate a checked, optimized plan: Arrow in process
(``engines/arrow``), SQL text for five dialects (``engines/sql``) and Spark
(``engines/spark.py``).  What an engine receives is described in
``engines/base.py`` and docs/architecture.md."""
