# The reconcile job image: one image for the Lambda (CMD = the handler) and the Fargate task (the task
# definition overrides the entry point to `python -m jobs.nightly`). Built by `sam build` from
# infra/reconcile.yaml; never pushed by hand.
FROM public.ecr.aws/lambda/python:3.11

WORKDIR /tmp/src
COPY pyproject.toml README.md ./
COPY pipeline/ pipeline/
COPY reconcile/ reconcile/
COPY jobs/ jobs/
COPY sandbox/ sandbox/
# A regular (non-editable) install into the runtime's site-packages, then drop the sources.
RUN pip install --no-cache-dir . && rm -rf /tmp/src

WORKDIR ${LAMBDA_TASK_ROOT}
CMD ["jobs.nightly.lambda_handler"]
