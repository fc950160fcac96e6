-- Revenue and item counts per order status.
SELECT o.status, count(*) AS items, sum(i.quantity * i.unit_price) AS revenue
FROM orders o JOIN order_items i ON i.order_id = o.id
GROUP BY o.status
