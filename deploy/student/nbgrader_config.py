"""nbgrader configuration of a student's Jupyter server on the course hub (deploy/coursehub.py binds
this folder read-only as the server's JUPYTER_CONFIG_DIR)."""
import sys

sys.path.insert(0, "/opt/jupyter-course")     # deploy/hubexchange.py
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "neural-engine-unit00"
# the exchange is the hub's exchange service, reached through this student's own socket
c.HubExchange.socket = "/run/course/exchange.sock"
c.ExchangeFactory.list = "hubexchange.HubList"
c.ExchangeFactory.fetch_assignment = "hubexchange.HubFetchAssignment"
c.ExchangeFactory.submit = "hubexchange.HubSubmit"
c.ExchangeFactory.fetch_feedback = "hubexchange.HubFetchFeedback"
c.Exchange.timezone = "Asia/Tokyo"
c.KernelManager.transport = "ipc"          # Validate's kernel: Unix sockets, no TCP port
