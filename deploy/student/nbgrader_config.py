"""nbgrader configuration of a student's Jupyter server on the course hub (deploy/coursehub.py binds
this folder read-only as the server's JUPYTER_CONFIG_DIR)."""
c = get_config()  # noqa: F821
c.Exchange.root = "/srv/nbgrader/exchange"          # the hub's exchange, as mounted in the sandbox
c.CourseDirectory.course_id = "neural-engine-unit00"
