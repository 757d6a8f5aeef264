"""The maker's process: policy, artifact fetching, one task runner per machine, the journal
that keeps completions from being lost, and the ``fabnet agent`` command."""
