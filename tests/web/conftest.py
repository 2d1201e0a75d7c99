from tests.live.conftest import live_server

__all__ = ["live_server"]
