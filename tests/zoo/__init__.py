"""A zoo of small job APIs that do not look like the reference scan service.

Each module is one FastAPI service with a plain module-level ``app`` (correct)
and ``app_<bug>`` variants, and its contract sits next to it as ``<module>.toml``.
``tests/integration/test_zoo.py`` gates every variant with the CLI, as a user
would; ``docs/testing-your-service.md`` walks through one of them.

==========  ======================================================  =======================
module      shape                                                   buggy variants
==========  ======================================================  =======================
jobs        201 + ``Location``, ``job.state``, 404 unknown, 1-2 s   per_process
tasks       201 + nested id, nested progress, ``missing``, 8-10 s   stale_cache
reports     200, flat custom fields, ``X-User`` auth, 1-2 s         short_ttl, no_owner_check
crawls      202, asyncio task + lease, ``X-Served-By``, 1.2-2 s     dies, vanishes
batches     200, ``owner.name``, 410 gone / 404 not yours, 8-10 s  shared_slot
==========  ======================================================  =======================
"""
