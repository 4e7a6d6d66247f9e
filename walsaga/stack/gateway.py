"""nginx as the API gateway, configured from the stack's instances."""
from __future__ import annotations

import os
import shutil
import urllib.request

from walsaga.stack import procs, runtime_user
from walsaga.stack.config import API_SERVICES, QUERIES, StackConfig
from walsaga.stack.kafka import TEMPLATES


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not found:
        raise RuntimeError("nginx not found: run `make install` (installs Debian's nginx)")
    return found


def render(cfg: StackConfig) -> str:
    upstreams, locations = [], []
    for svc in API_SERVICES:
        # an idle kept-alive connection is dropped by nginx (30 s) before uvicorn would close it under a request
        # (services/common/runner.py: 75 s): that race answered reads 502 in the 10,000-client run; and one failure
        # alone does not take an instance out (with two instances, one hiccup each made every read 502 for 2 s)
        servers = "\n".join(f"        server 127.0.0.1:{cfg.ports.api(svc, i)} max_fails=3 fail_timeout=2s;"
                            for i in range(cfg.api_instances))
        upstreams.append(f"    upstream {svc} {{\n{servers}\n        keepalive 64;\n"
                         "        keepalive_timeout 30s;\n    }")
        if svc != QUERIES:
            # authentication at the edge: no bearer token, no API (each API verifies the token and authorizes)
            locations.append(f"        location /{svc} {{ if ($no_bearer) {{ return 401; }} "
                             f"proxy_pass http://{svc}; }}")
            if svc != "orders":  # the contract is public: its OpenAPI document and docs page need no token
                locations.append(f"        location ~ ^/{svc}/(openapi\\.json|docs)$ {{ proxy_pass http://{svc}; }}")
    # CQRS: reads of orders come from the order view (the queries service), writes go to the orders service
    upstreams.append(f"    map $request_method $orders_side {{\n        GET {QUERIES};\n        HEAD {QUERIES};\n"
                     "        default orders;\n    }")
    locations = [loc.replace("proxy_pass http://orders;", "proxy_pass http://$orders_side;") for loc in locations]
    locations += ["        location ~ ^/orders/(openapi\\.json|docs)$ { proxy_pass http://orders; }",
                  f"        location /{QUERIES}/ {{ proxy_pass http://{QUERIES}; }}"]
    tmp = cfg.run / "nginx-tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    runtime_user.own(tmp)
    return (TEMPLATES / "nginx.conf").read_text().format(
        run=cfg.run, logs=cfg.logs, tmp=tmp, port=cfg.ports.gateway,
        write_rate=cfg.gateway_write_rate, write_queue=cfg.gateway_write_queue,
        upstreams="\n".join(upstreams), locations="\n".join(locations))


def start(cfg: StackConfig) -> None:
    conf = runtime_user.write_private(cfg.etc / "nginx.conf", render(cfg))
    procs.start(cfg, "gateway", [nginx_binary(), "-c", str(conf), "-p", str(cfg.run), "-e",
                                 str(cfg.logs / "nginx-error.log")], nice=cfg.edge_nice)
    procs.wait_for("gateway", lambda: _healthy(cfg), timeout=30, log=cfg.logs / "nginx-error.log")


def _healthy(cfg: StackConfig) -> bool:
    with urllib.request.urlopen(f"{cfg.gateway_url}/health", timeout=2) as resp:
        return resp.status == 200
