"""The gateway's nginx configuration as rendered for a stack: balanced blocks, one upstream per API with every
instance, and (where nginx is installed, as `make install` does) accepted by `nginx -t`."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from walsaga.stack import gateway
from walsaga.stack.config import Ports, StackConfig


@pytest.fixture
def cfg(tmp_path: Path) -> StackConfig:
    cfg = StackConfig(home=tmp_path, ports=Ports(5000), api_instances=2)
    for d in cfg.dirs():
        d.mkdir(parents=True, exist_ok=True)
    return cfg


def test_blocks_balance_and_every_api_instance_is_an_upstream_server(cfg: StackConfig) -> None:
    conf = gateway.render(cfg)
    assert conf.count("{") == conf.count("}"), conf
    for svc in gateway.API_SERVICES:
        assert f"upstream {svc} {{" in conf
        for i in range(cfg.api_instances):
            assert f"server 127.0.0.1:{cfg.ports.api(svc, i)} " in conf


@pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                    reason="nginx is not installed (make install installs it)")
def test_nginx_accepts_it(cfg: StackConfig) -> None:
    path = cfg.etc / "nginx.conf"
    path.write_text(gateway.render(cfg))
    done = subprocess.run([gateway.nginx_binary(), "-t", "-c", str(path), "-p", str(cfg.run), "-e",
                           str(cfg.logs / "nginx-error.log")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
