-- parkgrid central's PostgreSQL roles and database. Once, as a superuser:
--   sudo -u postgres psql -v ON_ERROR_STOP=1 -f deploy/postgresql/roles.sql
--   sudo -u postgres psql -c '\password parkgrid_owner' -c '\password parkgrid_central'
-- parkgrid_owner owns the schema and runs the migrations (`parkgrid central migrate`,
-- once per upgrade, before the processes start); parkgrid_central is what every
-- `central serve` process logs in as: it reads and writes rows, listens and notifies
-- (the live stream's relay) and takes advisory locks (leases), and cannot change the schema.
CREATE ROLE parkgrid_owner LOGIN;
-- Each process holds at most 8 + 16 pooled connections in the server and as many in its
-- ingest writer, plus its lease and relay sessions: about 50; 4 processes fit in 200.
CREATE ROLE parkgrid_central LOGIN CONNECTION LIMIT 200;
CREATE DATABASE parkgrid OWNER parkgrid_owner ENCODING 'UTF8' TEMPLATE template0;
\connect parkgrid
-- PostgreSQL 15: schema public belongs to the database owner; nobody else may create in it.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO parkgrid_central;
-- Tables and sequences the owner's migrations create: rows only, for the serving role.
ALTER DEFAULT PRIVILEGES FOR ROLE parkgrid_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO parkgrid_central;
ALTER DEFAULT PRIVILEGES FOR ROLE parkgrid_owner IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO parkgrid_central;
