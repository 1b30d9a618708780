from __future__ import annotations

from typing import Any

from backends.memory import MemoryBackend


class MemoryFactory:
    async def create(self, **options: Any) -> MemoryBackend:
        backend = MemoryBackend(**options)
        await backend.start()
        return backend

    async def dispose(self) -> None:
        pass


FACTORIES = {"memory": MemoryFactory}
