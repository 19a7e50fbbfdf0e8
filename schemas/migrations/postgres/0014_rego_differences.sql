-- How a tenant takes a bundle that Warden may evaluate otherwise than OPA
-- (docs/rego-compatibility.md): 'warn' stores it and lists each place as an
-- upload notice; 'refuse' refuses the upload with rego_difference.
ALTER TABLE tenants ADD COLUMN rego_differences TEXT NOT NULL DEFAULT 'warn';
