import re


def test_help_lists_only_working_commands(cli):
    result = cli("--help")
    assert result.returncode == 0
    listed = set(re.findall(r"│ ([a-z][a-z-]+) ", result.stdout))
    assert {"validate", "serve-judge", "doctor"} <= listed
    for name in listed:  # every listed command answers its own --help
        assert cli(name, "--help").returncode == 0, name


def test_doctor_quick(cli):
    result = cli("doctor", "--skip-server", "--skip-model")
    assert result.returncode == 0, result.stdout + result.stderr
    for row in ("torch", "transformers", "cuda", "free disk"):
        assert row in result.stdout


def test_unknown_command_suggests(cli):
    result = cli("doctr")
    assert result.returncode == 2 and "doctor" in result.stderr
