# The reconcile job image: one image for the Lambda (CMD = the handler, run by the Lambda runtime
# interface client) and the Fargate task (the task definition overrides the entry point to
# `python -m jobs.nightly`). Built by `sam build` from infra/reconcile.yaml; never pushed by hand.
#
# The base is python:3.11-slim (Debian, a current glibc: the locked wheels of numpy and pyarrow
# need glibc >= 2.28, which the Amazon Linux 2 based Lambda python:3.11 image lacks), pinned by
# digest. BASE_IMAGE_DIGEST below is a PLACEHOLDER (all zeros): this repository was prepared
# without registry access, so no real digest could be read. Until it is replaced, the build fails
# at FROM instead of silently using whatever the tag points to today. Set it once
# (docs/deploy.md, "The job image's base"), e.g. from
# `docker buildx imagetools inspect python:3.11-slim`.
ARG BASE_IMAGE_DIGEST=sha256:0000000000000000000000000000000000000000000000000000000000000000
FROM python:3.11-slim@${BASE_IMAGE_DIGEST}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH=/app

# Dependencies only from the lock (`make lock`), each file checked against its hash; the lock
# includes awslambdaric, the Lambda runtime interface client.
COPY infra/requirements-job.txt /tmp/requirements-job.txt
RUN pip install --no-cache-dir --no-deps --require-hashes -r /tmp/requirements-job.txt \
    && rm /tmp/requirements-job.txt

# The product's packages only - no tests, bench, sandbox, notebooks or out/ - as plain source:
# on the import path (PYTHONPATH) and the working directory for `python -m jobs.nightly`.
WORKDIR /app
COPY pipeline/ /app/pipeline/
COPY reconcile/ /app/reconcile/
COPY jobs/ /app/jobs/

# A batch job and a Lambda image have no endpoint to probe: ECS tracks the task's exit code
# (TaskFailedAlarm) and Lambda ignores HEALTHCHECK.
# checkov:skip=CKV_DOCKER_2: a run-to-completion job (Lambda or Fargate task) has no health to probe
# Not root: a numeric user needs no /etc/passwd entry; the files above are world-readable.
USER 10001:10001
ENTRYPOINT ["python", "-m", "awslambdaric"]
CMD ["jobs.nightly.lambda_handler"]
