# One image for every Canaliza process; the command picks the service:
#   canaliza serve auth | capacity | referral | audit | frontend,  canaliza gateway,
#   canaliza migrate

# The web UI's browser packages (htmx, Chart.js, axe-core) when the frontend is in the tree;
# an empty directory otherwise.
FROM node:20-slim AS ui
WORKDIR /src
COPY . .
RUN if [ -f frontend/package-lock.json ]; then \
        cd frontend && npm ci --omit=dev --no-audit --no-fund --loglevel=error; \
    else mkdir -p frontend/node_modules; fi

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.lock pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
COPY --from=ui /src/frontend/node_modules ./frontend/node_modules
RUN pip install --no-cache-dir --no-deps -e . \
    && useradd --system --uid 10001 canaliza && chown -R canaliza /app
USER canaliza
ENV CANALIZA_HOST=0.0.0.0 CANALIZA_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
CMD ["canaliza", "serve", "all"]
