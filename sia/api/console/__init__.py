"""The web console: server-rendered pages for reps and managers in the `sia serve` app.

The machinery is here (sessions and CSRF tokens in `session`, what every page shares in
`pages`, the Jinja2 templates and the CSS shipped in this package); the pages are the
routers in sia/api/routes/console*.py.
The console reads and writes through the same service functions as the API
(sia/service/), and its routes are in the one authorization table
(sia/api/authorization.py): public for the bearer check, with the roles a signed-in
session needs in `SESSION_ROLES`.
"""
