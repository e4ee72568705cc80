# heattrack container image: one image for a laptop, Slurm (Apptainer can run it) and Kubernetes.
# CPU build by default. The install step is the same requirement set and command as README/CI:
# requirements/lock.txt (torch 2.13.0+cpu) then the package itself without dependencies.
#   docker build -t heattrack:0.1.0 .
#   docker run --rm -v $PWD/demo:/work/demo heattrack:0.1.0 demo --out /work/demo
# GPU nodes: see containers/Dockerfile.cuda (same lock, CUDA torch wheel swapped in).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# where pip finds torch==2.13.0+cpu (PyTorch's CPU wheel index)
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements/lock.txt requirements/lock.txt
RUN python -m venv /opt/heattrack \
 && /opt/heattrack/bin/pip install --extra-index-url "${TORCH_INDEX}" -r requirements/lock.txt
COPY pyproject.toml README.md ./
COPY heattrack heattrack
RUN /opt/heattrack/bin/pip install --no-deps .

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/heattrack /opt/heattrack
RUN useradd --create-home --uid 1000 heattrack
USER heattrack
WORKDIR /work
# GDAL settings for windowed/cloud reads; AWS_* credentials come from the environment at run time.
# MALLOC_*: a tile's numpy temporaries stay on the heap, which is not trimmed back to the OS after every tile, and
# the task thread allocates from glibc's main arena (WORKER_ENV in orchestration/cluster.py).
ENV PATH=/opt/heattrack/bin:$PATH NUMBA_CACHE_DIR=/tmp/numba-cache \
    GDAL_CACHEMAX=512 \
    GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR \
    GDAL_HTTP_MAX_RETRY=5 \
    GDAL_HTTP_RETRY_DELAY=2 \
    CPL_VSIL_CURL_ALLOWED_EXTENSIONS=.tif,.TIF,.tiff,.jp2,.json,.xml \
    MPLBACKEND=Agg \
    MALLOC_MMAP_THRESHOLD_=33554432 \
    MALLOC_TRIM_THRESHOLD_=268435456 \
    MALLOC_ARENA_MAX=1 \
    PYTHONUNBUFFERED=1
ENTRYPOINT ["heattrack"]
CMD ["--help"]
