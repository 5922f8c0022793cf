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
          WHEN COALESCE("r_orders"."a_orders_1", 0) IS NULL
          OR CAST(100.0 AS DOUBLE PRECISION) IS NULL
          THEN NULL
          WHEN (
            COALESCE("r_orders"."a_orders_1", 0) = CAST('NaN' AS DOUBLE PRECISION)
          )
          OR (
            CAST(100.0 AS DOUBLE PRECISION) = CAST('NaN' AS DOUBLE PRECISION)
          )
          THEN FALSE
          ELSE (
            COALESCE("r_orders"."a_orders_1", 0) > CAST(100.0 AS DOUBLE PRECISION)
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
    CAST(CAST(EXTRACT(epoch FROM DATE_TRUNC('MICROSECOND', CAST(CAST('2024-03-31 10:30:00.000000' AS TIMESTAMP) AS TIMESTAMP)) - DATE_TRUNC('MICROSECOND', CAST(CAST(p."signup" AS TIMESTAMP) AS TIMESTAMP))) * 1000000 AS BIGINT) AS DOUBLE PRECISION) / 86400000000.0
  ) AS BIGINT) AS "tenure_days",
  (
    CAST(p."amount_total" AS DOUBLE PRECISION) / NULLIF(
      CAST(CAST(COALESCE("r_orders"."a_orders_2", 0) AS DOUBLE PRECISION) AS DOUBLE PRECISION),
      0
    )
  ) AS "ratio"
FROM "profiles" AS p
LEFT JOIN (
  SELECT
    "customer_id",
    COUNT(*) FILTER(WHERE
      (
        CAST("ts" AT TIME ZONE 'UTC' AS TIMESTAMP) >= CAST((
          CAST('2024-03-31 10:30:00.000000' AS TIMESTAMP) + INTERVAL '-90 DAY'
        ) AS TIMESTAMP)
      )) AS "a_orders_0",
    (
      CASE
        WHEN ABS(
          SUM(
            (
              CASE
                WHEN CAST("amount" AS DOUBLE PRECISION) = CAST('NaN' AS DOUBLE PRECISION)
                OR ABS(CAST("amount" AS DOUBLE PRECISION)) = CAST('Infinity' AS DOUBLE PRECISION)
                THEN CAST(CAST("amount" AS DOUBLE PRECISION) AS pg_catalog.numeric)
                ELSE CAST(SIGN(CAST("amount" AS DOUBLE PRECISION)) AS pg_catalog.numeric) * (
                  (
                    CAST(CAST((
                      'x' || PG_CATALOG.ENCODE(PG_CATALOG.FLOAT8SEND(CAST("amount" AS DOUBLE PRECISION)), 'hex')
                    ) AS BIT(64)) AS BIGINT) & 4503599627370495
                  ) + CASE
                    WHEN ABS(CAST("amount" AS DOUBLE PRECISION)) >= CAST(2.2250738585072014e-308 AS DOUBLE PRECISION)
                    THEN 4503599627370496
                    ELSE 0
                  END
                ) * (
                  CASE
                    WHEN ABS(CAST("amount" AS DOUBLE PRECISION)) < CAST(4503599627370496.0 AS DOUBLE PRECISION)
                    THEN POWER(
                      CAST(5 AS pg_catalog.numeric),
                      -(
                        GREATEST(
                          (
                            CAST(CAST((
                              'x' || PG_CATALOG.ENCODE(PG_CATALOG.FLOAT8SEND(CAST("amount" AS DOUBLE PRECISION)), 'hex')
                            ) AS BIT(64)) AS BIGINT) >> 52
                          ) & 2047,
                          1
                        ) - 1075
                      )
                    ) * CAST((
                      '1e' || CAST((
                        GREATEST(
                          (
                            CAST(CAST((
                              'x' || PG_CATALOG.ENCODE(PG_CATALOG.FLOAT8SEND(CAST("amount" AS DOUBLE PRECISION)), 'hex')
                            ) AS BIT(64)) AS BIGINT) >> 52
                          ) & 2047,
                          1
                        ) - 1075
                      ) AS TEXT)
                    ) AS pg_catalog.numeric)
                    ELSE POWER(
                      CAST(2 AS pg_catalog.numeric),
                      (
                        GREATEST(
                          (
                            CAST(CAST((
                              'x' || PG_CATALOG.ENCODE(PG_CATALOG.FLOAT8SEND(CAST("amount" AS DOUBLE PRECISION)), 'hex')
                            ) AS BIT(64)) AS BIGINT) >> 52
                          ) & 2047,
                          1
                        ) - 1075
                      )
                    )
                  END
                )
              END
            )
          ) FILTER(WHERE
            (
              CAST("ts" AT TIME ZONE 'UTC' AS TIMESTAMP) >= CAST((
                CAST('2024-03-31 10:30:00.000000' AS TIMESTAMP) + INTERVAL '-365 DAY'
              ) AS TIMESTAMP)
            ))
        ) < (
          POWER(CAST(2 AS pg_catalog.numeric), 1024) - POWER(CAST(2 AS pg_catalog.numeric), 970)
        )
        THEN CAST(SUM(
          (
            CASE
              WHEN CAST("amount" AS DOUBLE PRECISION) = CAST('NaN' AS DOUBLE PRECISION)
              OR ABS(CAST("amount" AS DOUBLE PRECISION)) = CAST('Infinity' AS DOUBLE PRECISION)
              THEN CAST(CAST("amount" AS DOUBLE PRECISION) AS pg_catalog.numeric)
              ELSE CAST(SIGN(CAST("amount" AS DOUBLE PRECISION)) AS pg_catalog.numeric) * (
                (
                  CAST(CAST((
                    'x' || PG_CATALOG.ENCODE(PG_CATALOG.FLOAT8SEND(CAST("amount" AS DOUBLE PRECISION)), 'hex')
                  ) AS BIT(64)) AS BIGINT) & 4503599627370495
                ) + CASE
                  WHEN ABS(CAST("amount" AS DOUBLE PRECISION)) >= CAST(2.2250738585072014e-308 AS DOUBLE PRECISION)
                  THEN 4503599627370496
                  ELSE 0
                END
              ) * (
                CASE
                  WHEN ABS(CAST("amount" AS DOUBLE PRECISION)) < CAST(4503599627370496.0 AS DOUBLE PRECISION)
                  THEN POWER(
                    CAST(5 AS pg_catalog.numeric),
                    -(
                      GREATEST(
                        (
                          CAST(CAST((
                            'x' || PG_CATALOG.ENCODE(PG_CATALOG.FLOAT8SEND(CAST("amount" AS DOUBLE PRECISION)), 'hex')
                          ) AS BIT(64)) AS BIGINT) >> 52
                        ) & 2047,
                        1
                      ) - 1075
                    )
                  ) * CAST((
                    '1e' || CAST((
                      GREATEST(
                        (
                          CAST(CAST((
                            'x' || PG_CATALOG.ENCODE(PG_CATALOG.FLOAT8SEND(CAST("amount" AS DOUBLE PRECISION)), 'hex')
                          ) AS BIT(64)) AS BIGINT) >> 52
                        ) & 2047,
                        1
                      ) - 1075
                    ) AS TEXT)
                  ) AS pg_catalog.numeric)
                  ELSE POWER(
                    CAST(2 AS pg_catalog.numeric),
                    (
                      GREATEST(
                        (
                          CAST(CAST((
                            'x' || PG_CATALOG.ENCODE(PG_CATALOG.FLOAT8SEND(CAST("amount" AS DOUBLE PRECISION)), 'hex')
                          ) AS BIT(64)) AS BIGINT) >> 52
                        ) & 2047,
                        1
                      ) - 1075
                    )
                  )
                END
              )
            END
          )
        ) FILTER(WHERE
          (
            CAST("ts" AT TIME ZONE 'UTC' AS TIMESTAMP) >= CAST((
              CAST('2024-03-31 10:30:00.000000' AS TIMESTAMP) + INTERVAL '-365 DAY'
            ) AS TIMESTAMP)
          )) AS DOUBLE PRECISION)
        ELSE CAST(SIGN(
          SUM(
            (
              CASE
                WHEN CAST("amount" AS DOUBLE PRECISION) = CAST('NaN' AS DOUBLE PRECISION)
                OR ABS(CAST("amount" AS DOUBLE PRECISION)) = CAST('Infinity' AS DOUBLE PRECISION)
                THEN CAST(CAST("amount" AS DOUBLE PRECISION) AS pg_catalog.numeric)
                ELSE CAST(SIGN(CAST("amount" AS DOUBLE PRECISION)) AS pg_catalog.numeric) * (
                  (
                    CAST(CAST((
                      'x' || PG_CATALOG.ENCODE(PG_CATALOG.FLOAT8SEND(CAST("amount" AS DOUBLE PRECISION)), 'hex')
                    ) AS BIT(64)) AS BIGINT) & 4503599627370495
                  ) + CASE
                    WHEN ABS(CAST("amount" AS DOUBLE PRECISION)) >= CAST(2.2250738585072014e-308 AS DOUBLE PRECISION)
                    THEN 4503599627370496
                    ELSE 0
                  END
                ) * (
                  CASE
                    WHEN ABS(CAST("amount" AS DOUBLE PRECISION)) < CAST(4503599627370496.0 AS DOUBLE PRECISION)
                    THEN POWER(
                      CAST(5 AS pg_catalog.numeric),
                      -(
                        GREATEST(
                          (
                            CAST(CAST((
                              'x' || PG_CATALOG.ENCODE(PG_CATALOG.FLOAT8SEND(CAST("amount" AS DOUBLE PRECISION)), 'hex')
                            ) AS BIT(64)) AS BIGINT) >> 52
                          ) & 2047,
                          1
                        ) - 1075
                      )
                    ) * CAST((
                      '1e' || CAST((
                        GREATEST(
                          (
                            CAST(CAST((
                              'x' || PG_CATALOG.ENCODE(PG_CATALOG.FLOAT8SEND(CAST("amount" AS DOUBLE PRECISION)), 'hex')
                            ) AS BIT(64)) AS BIGINT) >> 52
                          ) & 2047,
                          1
                        ) - 1075
                      ) AS TEXT)
                    ) AS pg_catalog.numeric)
                    ELSE POWER(
                      CAST(2 AS pg_catalog.numeric),
                      (
                        GREATEST(
                          (
                            CAST(CAST((
                              'x' || PG_CATALOG.ENCODE(PG_CATALOG.FLOAT8SEND(CAST("amount" AS DOUBLE PRECISION)), 'hex')
                            ) AS BIT(64)) AS BIGINT) >> 52
                          ) & 2047,
                          1
                        ) - 1075
                      )
                    )
                  END
                )
              END
            )
          ) FILTER(WHERE
            (
              CAST("ts" AT TIME ZONE 'UTC' AS TIMESTAMP) >= CAST((
                CAST('2024-03-31 10:30:00.000000' AS TIMESTAMP) + INTERVAL '-365 DAY'
              ) AS TIMESTAMP)
            ))
        ) AS DOUBLE PRECISION) * CAST('Infinity' AS DOUBLE PRECISION)
      END
    ) AS "a_orders_1",
    COUNT(*) AS "a_orders_2"
  FROM "orders"
  WHERE
    NOT "customer_id" IS NULL
  GROUP BY
    "customer_id"
) AS "r_orders"
  ON p."customer_id" = "r_orders"."customer_id"
