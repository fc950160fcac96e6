-- The ten best-selling products by quantity.
SELECT p.sku, p.title, sum(i.quantity) AS sold
FROM order_items i JOIN products p ON p.id = i.product_id
GROUP BY p.sku, p.title
ORDER BY sold DESC, p.sku
LIMIT 10
