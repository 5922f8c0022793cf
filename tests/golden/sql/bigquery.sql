SELECT
  p.`customer_id` AS `customer_id`,
  COALESCE((
    COALESCE(`r_orders`.`a_orders_0`, 0) >= CAST(2 AS INT64)
  ), FALSE) AS `active`,
  COALESCE(
    (
      (
        p.`country` IN ('PL', 'DE')
      )
      AND (
        CASE
          WHEN COALESCE(`r_orders`.`a_orders_1`, 0) IS NULL OR CAST(100.0 AS FLOAT64) IS NULL
          THEN NULL
          WHEN IS_NAN(COALESCE(`r_orders`.`a_orders_1`, 0)) OR IS_NAN(CAST(100.0 AS FLOAT64))
          THEN FALSE
          ELSE (
            COALESCE(`r_orders`.`a_orders_1`, 0) > CAST(100.0 AS FLOAT64)
          )
        END
      )
    ),
    FALSE
  ) AS `big`,
  COALESCE(
    (
      (
        RIGHT(LOWER(p.`email`), LENGTH('@gmail.com')) = '@gmail.com'
      )
      AND (
        NOT (
          (
            p.`age` >= CAST(18 AS INT64)
          ) AND (
            p.`age` <= CAST(24 AS INT64)
          )
        )
      )
    ),
    FALSE
  ) AS `gmail`,
  (
    CASE
      WHEN (
        p.`age` < CAST(30 AS INT64)
      )
      THEN 'young'
      WHEN (
        p.`age` < CAST(60 AS INT64)
      )
      THEN 'adult'
      ELSE 'senior'
    END
  ) AS `band`,
  CAST(FLOOR(
    DATE_DIFF(
      CAST('2024-03-31 10:30:00.000000' AS DATETIME),
      CAST(p.`signup` AS DATETIME),
      MICROSECOND
    ) / 86400000000.0
  ) AS INT64) AS `tenure_days`,
  (
    CAST(p.`amount_total` AS FLOAT64) / NULLIF(CAST(CAST(COALESCE(`r_orders`.`a_orders_2`, 0) AS FLOAT64) AS FLOAT64), 0)
  ) AS `ratio`
FROM `profiles` AS p
LEFT JOIN (
  SELECT
    `customer_id`,
    COUNTIF(
      (
        DATETIME(`ts`, 'UTC') >= CAST((
          CAST('2024-03-31 10:30:00.000000' AS DATETIME) + INTERVAL '-90' DAY
        ) AS DATETIME)
      )
    ) AS `a_orders_0`,
    SUM(
      IF(
        (
          DATETIME(`ts`, 'UTC') >= CAST((
            CAST('2024-03-31 10:30:00.000000' AS DATETIME) + INTERVAL '-365' DAY
          ) AS DATETIME)
        ),
        `amount`,
        NULL
      )
    ) AS `a_orders_1`,
    COUNT(*) AS `a_orders_2`
  FROM `orders`
  WHERE
    NOT `customer_id` IS NULL
  GROUP BY
    `customer_id`
) AS `r_orders`
  ON p.`customer_id` = `r_orders`.`customer_id`
