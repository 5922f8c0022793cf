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
          WHEN ISNAN(COALESCE("r_orders"."a_orders_1", 0)) OR ISNAN(CAST(100.0 AS DOUBLE))
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
    DATE_DIFF(
      'MICROSECOND',
      CAST(p."signup" AS TIMESTAMP),
      CAST('2024-03-31 10:30:00.000000' AS TIMESTAMP)
    ) / 86400000000.0
  ) AS BIGINT) AS "tenure_days",
  (
    CAST(p."amount_total" AS DOUBLE) / NULLIF(CAST(CAST(COALESCE("r_orders"."a_orders_2", 0) AS DOUBLE) AS DOUBLE), 0)
  ) AS "ratio"
FROM "profiles" AS p
LEFT JOIN (
  SELECT
    "customer_id",
    COUNT(*) FILTER(WHERE
      (
        CAST("ts" AT TIME ZONE 'UTC' AS TIMESTAMP) >= CAST((
          CAST('2024-03-31 10:30:00.000000' AS TIMESTAMP) + INTERVAL '-90' DAY
        ) AS TIMESTAMP)
      )) AS "a_orders_0",
    FSUM("amount") FILTER(WHERE
      (
        CAST("ts" AT TIME ZONE 'UTC' AS TIMESTAMP) >= CAST((
          CAST('2024-03-31 10:30:00.000000' AS TIMESTAMP) + INTERVAL '-365' DAY
        ) AS TIMESTAMP)
      )) AS "a_orders_1",
    COUNT(*) AS "a_orders_2"
  FROM "orders"
  WHERE
    NOT "customer_id" IS NULL
  GROUP BY
    "customer_id"
) AS "r_orders"
  ON p."customer_id" = "r_orders"."customer_id"
