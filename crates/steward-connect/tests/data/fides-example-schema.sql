-- The schema of Fides's PostgreSQL example shop (ethyca-fides 2.86.2, fides/data/sample_project/
-- postgres_sample.sql, Apache-2.0), with the indexes an operator adds on identity and reference
-- columns: the database examples/fides-example-dataset.yml describes. From ../shared/bench/fides.

DROP TABLE IF EXISTS public.product, public.address, public.customer, public.employee,
    public.payment_card, public.orders, public.order_item, public.visit, public.login,
    public.service_request, public.report CASCADE;

CREATE TABLE public.product (
    id SERIAL PRIMARY KEY,
    name CHARACTER VARYING(100),
    description CHARACTER VARYING(200),
    url CHARACTER VARYING(200),
    price MONEY
);

CREATE TABLE public.address (
    id SERIAL PRIMARY KEY,
    house INT,
    street CHARACTER VARYING(100),
    city CHARACTER VARYING(100),
    state CHARACTER VARYING(100),
    zip CHARACTER VARYING(100)
);

CREATE TABLE public.customer (
    id SERIAL PRIMARY KEY,
    email CHARACTER VARYING(100),
    name  CHARACTER VARYING(100),
    created TIMESTAMP,
    address_id BIGINT
);

CREATE TABLE public.employee (
    id SERIAL PRIMARY KEY,
    email CHARACTER VARYING(100),
    name CHARACTER VARYING(100),
    address_id BIGINT
);

CREATE TABLE public.payment_card (
    id CHARACTER VARYING(100) PRIMARY KEY,
    name CHARACTER VARYING(100),
    ccn BIGINT,
    code SMALLINT,
    preferred BOOLEAN,
    customer_id INT,
    billing_address_id BIGINT
);

CREATE TABLE public.orders (
    id CHARACTER VARYING(100) PRIMARY KEY,
    customer_id INT,
    shipping_address_id BIGINT,
    payment_card_id CHARACTER VARYING(100)
);

CREATE TABLE public.order_item (
    order_id CHARACTER VARYING(100),
    item_no SMALLINT,
    product_id INT,
    quantity SMALLINT,
    CONSTRAINT order_item_pk PRIMARY KEY (order_id, item_no)
);

CREATE TABLE public.visit (
    email CHARACTER VARYING(100),
    last_visit TIMESTAMP,
    CONSTRAINT visit_pk PRIMARY KEY (email, last_visit)
);

CREATE TABLE public.login (
    id INT PRIMARY KEY,
    customer_id INT,
    time TIMESTAMP
);

CREATE TABLE public.service_request (
    id CHARACTER VARYING(100) PRIMARY KEY,
    email CHARACTER VARYING(100),
    alt_email CHARACTER VARYING(100),
    opened DATE,
    closed DATE,
    employee_id INT
);

CREATE TABLE public.report (
    id INT PRIMARY KEY,
    email CHARACTER VARYING(100),
    name CHARACTER VARYING(100),
    year INT,
    month INT,
    total_visits INT
);

CREATE INDEX customer_email_idx            ON public.customer (email);
CREATE INDEX customer_address_id_idx       ON public.customer (address_id);
CREATE INDEX employee_email_idx            ON public.employee (email);
CREATE INDEX payment_card_customer_id_idx  ON public.payment_card (customer_id);
CREATE INDEX payment_card_billing_addr_idx ON public.payment_card (billing_address_id);
CREATE INDEX orders_customer_id_idx        ON public.orders (customer_id);
CREATE INDEX orders_shipping_addr_idx      ON public.orders (shipping_address_id);
CREATE INDEX orders_payment_card_id_idx    ON public.orders (payment_card_id);
CREATE INDEX order_item_product_id_idx     ON public.order_item (product_id);
CREATE INDEX login_customer_id_idx         ON public.login (customer_id);
CREATE INDEX service_request_email_idx     ON public.service_request (email);
CREATE INDEX service_request_alt_email_idx ON public.service_request (alt_email);
CREATE INDEX service_request_employee_idx  ON public.service_request (employee_id);
CREATE INDEX report_email_idx              ON public.report (email);
