-- +goose Up
-- The change counter every node's caches are checked against (package
-- cache): a write transaction that changes anything a cache may hold adds one
-- to one of these rows, chosen at random so that concurrent writers on
-- PostgreSQL rarely wait for each other's row lock; readers read the sum.
CREATE TABLE cache_epoch (
    shard INTEGER PRIMARY KEY,
    n BIGINT NOT NULL DEFAULT 0
);
INSERT INTO cache_epoch (shard, n) VALUES (0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0),
    (8, 0), (9, 0), (10, 0), (11, 0), (12, 0), (13, 0), (14, 0), (15, 0);

-- +goose Down
DROP TABLE cache_epoch;
