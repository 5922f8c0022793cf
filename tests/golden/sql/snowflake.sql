SELECT
  p."customer_id" AS "customer_id",
  COALESCE((
    COALESCE("r_orders"."a_orders_0", 0) >= CAST(2 AS BIGINT)
  ), FALSE) AS "active",
  COALESCE(
    (
      (
        p."country" IN ('PL', 'DE')
      )
      AND (
        CASE
          WHEN COALESCE("r_orders"."a_orders_1", 0) IS NULL OR CAST(100.0 AS DOUBLE) IS NULL
          THEN NULL
          WHEN (
            COALESCE("r_orders"."a_orders_1", 0) = CAST('NaN' AS DOUBLE)
          )
          OR (
            CAST(100.0 AS DOUBLE) = CAST('NaN' AS DOUBLE)
          )
          THEN FALSE
          ELSE (
            COALESCE("r_orders"."a_orders_1", 0) > CAST(100.0 AS DOUBLE)
          )
        END
      )
    ),
    FALSE
  ) AS "big",
  COALESCE(
    (
      (
        RIGHT(LOWER(p."email"), LENGTH('@gmail.com')) = '@gmail.com'
      )
      AND (
        NOT (
          (
            p."age" >= CAST(18 AS BIGINT)
          ) AND (
            p."age" <= CAST(24 AS BIGINT)
          )
        )
      )
    ),
    FALSE
  ) AS "gmail",
  (
    CASE
      WHEN (
        p."age" < CAST(30 AS BIGINT)
      )
      THEN 'young'
      WHEN (
        p."age" < CAST(60 AS BIGINT)
      )
      THEN 'adult'
      ELSE 'senior'
    END
  ) AS "band",
  CAST(FLOOR(
    DATEDIFF(
      MICROSECOND,
      CAST(p."signup" AS TIMESTAMPNTZ),
      CAST('2024-03-31 10:30:00.000000' AS TIMESTAMPNTZ)
    ) / 86400000000.0
  ) AS BIGINT) AS "tenure_days",
  (
    CAST(p."amount_total" AS DOUBLE) / NULLIF(CAST(CAST(COALESCE("r_orders"."a_orders_2", 0) AS DOUBLE) AS DOUBLE), 0)
  ) AS "ratio"
FROM "profiles" AS p
LEFT JOIN (
  SELECT
    "customer_id",
    COUNT_IF(
      (
        CAST(CONVERT_TIMEZONE('UTC', "ts") AS TIMESTAMPNTZ) >= CAST((
          CAST('2024-03-31 10:30:00.000000' AS TIMESTAMPNTZ) + INTERVAL '-90 DAY'
        ) AS TIMESTAMPNTZ)
      )
    ) AS "a_orders_0",
    SUM(
      IFF(
        (
          CAST(CONVERT_TIMEZONE('UTC', "ts") AS TIMESTAMPNTZ) >= CAST((
            CAST('2024-03-31 10:30:00.000000' AS TIMESTAMPNTZ) + INTERVAL '-365 DAY'
          ) AS TIMESTAMPNTZ)
        ),
        "amount",
        NULL
      )
    ) AS "a_orders_1",
    COUNT(*) AS "a_orders_2"
  FROM "orders"
  WHERE
    NOT "customer_id" IS NULL
  GROUP BY
    "customer_id"
) AS "r_orders"
  ON p."customer_id" = "r_orders"."customer_id"
