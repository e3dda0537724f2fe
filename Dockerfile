# batchrecall as an image: the wheel built in one stage, installed into a venv that the slim
# runtime stage copies, run as a non-root user. Build: docker build -t batchrecall .
# A site's vendor plugins: FROM this image, then /opt/batchrecall/bin/pip install the plugin.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
RUN python -m pip install --no-cache-dir "build>=1.2,<2"
COPY pyproject.toml README.md ./
COPY batchrecall ./batchrecall
RUN python -m build --wheel --outdir /dist
# The emulators (`emulate`, `run --emulate`) come with the image: rehearse before a real run.
RUN python -m venv /opt/batchrecall \
    && /opt/batchrecall/bin/pip install --no-cache-dir "$(ls /dist/batchrecall-*.whl)[emulator]"

FROM python:${PYTHON_VERSION}-slim
RUN useradd --create-home --uid 10001 --user-group batchrecall
COPY --from=build /opt/batchrecall /opt/batchrecall
ENV PATH=/opt/batchrecall/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
# Job files, the config and the results file live here (mount a volume).
WORKDIR /work
ENTRYPOINT ["batchrecall"]
CMD ["--help"]
