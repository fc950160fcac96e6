-- Customers per country, with how many are VIPs and how many left no email.
SELECT country, count(*) AS customers, count(*) FILTER (WHERE vip) AS vips,
       count(*) FILTER (WHERE email IS NULL) AS no_email
FROM customers
GROUP BY country
