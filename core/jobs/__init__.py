"""Job orchestration: what a user asks for and how it runs.

    specs, scan_spec   validated job specifications (pydantic, no torch)
    request            the body of POST /v1/jobs: one of the job kinds, by ``kind``
    budgets            memory and volume a spec will take (no torch)
    protocol           what a running job and its caller exchange: progress, cancel, result
    run                run_job: one entry for every kind; hmc_job, train_job, sample_job,
                       scan_job run each kind with the physics library
    report             side-by-side comparisons and the figures people look at

The CLI and the Celery worker call :func:`core.jobs.run.run_job`; the API imports the specs
and budgets only.
"""
