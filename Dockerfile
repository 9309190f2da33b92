# Tandem's worker and API: one image, the command decides (`tandem worker`, the default,
# or uvicorn for the API; see docker-compose.yml). Configured by environment only.
FROM python:3.11.13-slim-bookworm

# Bytecode is compiled below, at build time; at run time nothing is written beside the
# code (the app user could not, anyway).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY . .
# Non-editable: the image runs the installed wheel (code, plans, email and page
# templates, migrations), never the source tree, which is removed.
RUN pip install --compile . \
    && cd / && rm -rf /src

# An unprivileged user with a home for var/ (only used when no SMTP host is configured).
RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin tandem
USER 10001:10001
WORKDIR /home/tandem
ENV TANDEM_VAR_DIR=/home/tandem/var

EXPOSE 8000
CMD ["tandem", "worker"]
