"""MariaDB from Debian's packages, with a private data dir under the stack folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pymysql

from chalicelib.config import MySQLSettings
from infra.stack.paths import StackPaths
from infra.stack.process import StackError, run
from infra.stack.server import Server, find_executable

_SBIN = ("/usr/sbin", "/usr/local/sbin")


class MariaDB(Server):
    name = "mariadb"

    def __init__(self, paths: StackPaths, settings: MySQLSettings) -> None:
        super().__init__(paths)
        self.settings = settings
        self.port = settings.port

    @property
    def socket(self) -> Path:
        return self.paths.run_dir() / "mariadb.sock"

    def is_installed(self) -> bool:
        return all(find_executable(tool, *_SBIN) for tool in ("mariadbd", "mariadb-install-db"))

    def install(self) -> None:
        if shutil.which("apt-get") is None:
            raise StackError("MariaDB is not installed and there is no apt-get: install "
                             "mariadb-server (10.11 or later) and run again")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "update", "-q"], env=env)
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
             "mariadb-server", "mariadb-client"], env=env)
        # The package starts its own system instance where it can; ours is separate.

    def _runs_as_root(self) -> bool:
        return os.geteuid() == 0

    def prepare(self) -> None:
        super().prepare()
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        if (self.data_dir / "mysql").is_dir():
            return
        argv = [find_executable("mariadb-install-db", *_SBIN) or "mariadb-install-db",
                f"--datadir={self.data_dir}", "--auth-root-authentication-method=socket",
                "--skip-test-db"]
        if self._runs_as_root():
            argv.append("--user=mysql")
            shutil.chown(self.data_dir, "mysql", "mysql")
            shutil.chown(self.socket.parent, "mysql", "mysql")
        run(argv, timeout=120)

    def command(self) -> list[str]:
        argv = [find_executable("mariadbd", *_SBIN) or "mariadbd", "--no-defaults",
                f"--datadir={self.data_dir}", f"--bind-address={self.host}",
                f"--port={self.port}", f"--socket={self.socket}",
                f"--pid-file={self.data_dir / 'mariadbd.pid'}",
                "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
                "--innodb-buffer-pool-size=128M", "--skip-name-resolve",
                "--max-connections=500"]
        if self._runs_as_root():
            argv.append("--user=mysql")
        return argv

    def _root_connection(self) -> pymysql.connections.Connection:
        # unix_socket auth: the OS user (root) is the database root, no password anywhere.
        return pymysql.connect(unix_socket=str(self.socket), user="root", connect_timeout=2)

    def is_healthy(self) -> bool:
        try:
            with self._root_connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
                return cur.fetchone() == (1,)
        except pymysql.MySQLError:
            return False

    def bootstrap(self) -> None:
        s = self.settings
        with self._root_connection() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{s.database}` "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            for host in ("127.0.0.1", "localhost"):
                cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s",
                            (s.username, host, s.password))
                cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (s.username, host, s.password))
                # ALL on the service database; the test databases share the saga_ prefix.
                cur.execute(f"GRANT ALL PRIVILEGES ON `{s.database}`.* TO %s@%s",
                            (s.username, host))
                cur.execute(f"GRANT ALL PRIVILEGES ON `{s.database}\\_%%`.* TO %s@%s",
                            (s.username, host))
            conn.commit()
