"""The itops inventory agent: collects a machine's inventory and reports it to the itops server.

It runs on managed computers with only psutil and the Python standard library, so nothing in this
package may import Flask or any other part of itops. The wire contract is docs/agent-protocol.md.

    python -m itops.agent enroll --server https://itops.example --token itops_enr_...
    python -m itops.agent run            # report now and then every interval
    python -m itops.agent run --once     # report once (for cron or a systemd timer)
    python -m itops.agent collect        # print the report without sending it
"""
