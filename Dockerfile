# The reconcile job image: one image for the Lambda (CMD = the handler) and the Fargate task (the
# task definition overrides the entry point to `python -m jobs.nightly`). Built by `sam build` from
# infra/reconcile.yaml; never pushed by hand.
#
# The base image is pinned by digest. BASE_IMAGE_DIGEST below is a PLACEHOLDER (all zeros): this
# repository was prepared without registry access, so no real digest could be read. Until it is
# replaced, the build fails at FROM instead of silently using whatever the tag points to today.
# Set it once (docs/deploy.md, "The job image's base"), e.g. from
# `docker buildx imagetools inspect public.ecr.aws/lambda/python:3.11`.
ARG BASE_IMAGE_DIGEST=sha256:0000000000000000000000000000000000000000000000000000000000000000
FROM public.ecr.aws/lambda/python:3.11@${BASE_IMAGE_DIGEST}

# Dependencies only from the lock (`make lock`), each file checked against its hash.
COPY infra/requirements-job.txt /tmp/requirements-job.txt
RUN pip install --no-cache-dir --no-deps --require-hashes -r /tmp/requirements-job.txt \
    && rm /tmp/requirements-job.txt

# The product's packages only - no tests, bench, sandbox, notebooks or out/ - as plain source in
# the Lambda task root: on Lambda's import path, and the working directory for `python -m`.
COPY pipeline/ ${LAMBDA_TASK_ROOT}/pipeline/
COPY reconcile/ ${LAMBDA_TASK_ROOT}/reconcile/
COPY jobs/ ${LAMBDA_TASK_ROOT}/jobs/
WORKDIR ${LAMBDA_TASK_ROOT}

# A batch job and a Lambda image have no endpoint to probe: ECS tracks the task's exit code
# (TaskFailedAlarm) and Lambda ignores HEALTHCHECK.
# checkov:skip=CKV_DOCKER_2: a run-to-completion job (Lambda or Fargate task) has no health to probe
# Not root: a numeric user needs no /etc/passwd entry; the files above are world-readable.
# (Lambda runs every image as its own unprivileged user anyway.)
USER 10001:10001
CMD ["jobs.nightly.lambda_handler"]
