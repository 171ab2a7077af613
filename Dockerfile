# The pipeline's image for compose.yaml: every stage runs from it as `lc run STAGE`.
# The dependency layer is built from pyproject.toml alone, so editing the source reuses it; the package is
# then installed as a normal (non-editable) wheel, its schemas, migrations and contract ABIs included as
# package data, and runs as an unprivileged user from outside any source tree.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# 1. the runtime dependencies exactly as pyproject.toml declares them, without the package itself
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# 2. the package (what .dockerignore leaves of the checkout), then the source tree goes away
COPY . .
RUN pip install --no-deps . && cd / && rm -rf /src

# 3. an unprivileged user owning LC_HOME (compose mounts the lc-home volume there: it starts with this ownership)
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/lc --create-home --shell /usr/sbin/nologin lc
USER lc
WORKDIR /var/lib/lc
ENV LC_HOME=/var/lib/lc
CMD ["lc", "--help"]
