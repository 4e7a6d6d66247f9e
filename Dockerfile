# One image for every walsaga Python process: the services' APIs and command consumers, the Faust workers and the
# one-shot init job of docker-compose.yml. The command picks the process (see docker-compose.yml). The image holds
# code only: passwords reach the containers as environment variables at run time.
FROM python:3.11-slim

# The code runs from the source tree, as in the local stack (walsaga/stack/apps.py sets PYTHONPATH to the repo): the
# migrations and connectors/ are found relative to it and are not part of the installed package.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

# The pinned dependencies first, read from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Only what the processes run: never .stack/ (the local stack's data and generated secrets) nor .venv/.
COPY walsaga ./walsaga
COPY services ./services
COPY cdc ./cdc
COPY connectors ./connectors
COPY schemas ./schemas
COPY stream_processors ./stream_processors
COPY reconciliation ./reconciliation
COPY deploy/compose/init.py ./deploy/compose/init.py
RUN pip install --no-deps . && rm -rf build ./*.egg-info

RUN useradd --system --uid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin walsaga \
    && mkdir -p /var/lib/walsaga/faust \
    && chown walsaga /var/lib/walsaga/faust
USER walsaga

EXPOSE 8000
