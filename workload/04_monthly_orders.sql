-- Orders per month of 2023.
SELECT date_trunc('month', ordered_at) AS month, count(*) AS orders
FROM orders
WHERE ordered_at < TIMESTAMPTZ '2024-01-01 00:00:00+00'
GROUP BY 1
