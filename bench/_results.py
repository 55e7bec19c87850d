"""The benchmark's results: one run's samples and figures (``Result``), the ratios to the floor,
the table it prints."""

from __future__ import annotations

from dataclasses import dataclass, field

from _measure import percentile

__all__ = ["Result", "add_ratios", "table"]


@dataclass
class Result:
    shape: str
    workload: str
    tickets: int
    submit_s: list[float] = field(default_factory=list)
    light_submit_s: list[float] = field(default_factory=list)  # one at a time, after the run
    latency_s: list[float] = field(default_factory=list)
    first_submit: float = float("inf")
    last_finish: float = 0.0
    humans: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)

    def finished(self, submitted: float, finished: float) -> None:
        self.latency_s.append(finished - submitted)
        self.first_submit = min(self.first_submit, submitted)
        self.last_finish = max(self.last_finish, finished)

    def figures(self) -> dict[str, object]:
        span = max(self.last_finish - self.first_submit, 1e-9)
        cpu = sum(self.cpu_s.values())
        return {
            "shape": self.shape,
            "workload": self.workload,
            "tickets": self.tickets,
            "tickets_per_s": round(self.tickets / span, 2),
            "submit_p50_ms": round(percentile(self.submit_s, 0.5) * 1000, 1),
            "submit_p99_ms": round(percentile(self.submit_s, 0.99) * 1000, 1),
            "light_submit_p50_ms": _ms(self.light_submit_s, 0.5),
            "light_submit_p99_ms": _ms(self.light_submit_s, 0.99),
            "latency_p50_s": round(percentile(self.latency_s, 0.5), 2),
            "latency_p99_s": round(percentile(self.latency_s, 0.99), 2),
            "cpu_s_per_ticket": round(cpu / self.tickets, 3),
            "cpu_s_per_ticket_by_process": {
                k: round(v / self.tickets, 4) for k, v in self.cpu_s.items()
            },
            "cpu_s": self.cpu_s,
            "human_fraction": round(self.humans / self.tickets, 3),
            "statuses": self.statuses,
        }


def _ms(samples: list[float], q: float) -> float | None:
    return round(percentile(samples, q) * 1000, 1) if samples else None


def table(rows: list[dict[str, object]]) -> str:
    cols = [
        ("shape", "shape"),
        ("workload", "workload"),
        ("tickets", "tickets"),
        ("tickets_per_s", "t/s"),
        ("vs_floor", "x floor"),
        ("submit_p50_ms", "submit p50 ms"),
        ("submit_p99_ms", "submit p99 ms"),
        ("light_submit_p99_ms", "light submit p99 ms"),
        ("latency_p50_s", "latency p50 s"),
        ("latency_p99_s", "latency p99 s"),
        ("cpu_s_per_ticket", "CPU-s/ticket"),
        ("server_share", "server share"),
        ("human_fraction", "human"),
    ]
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(k, "")) for k, _ in cols) + " |")
    return "\n".join(lines)


def add_ratios(rows: list[dict[str, object]]) -> None:
    floors = {(r["workload"], r["tickets"]): r for r in rows if r["shape"] == "floor"}
    for row in rows:
        cpu = row["cpu_s"]
        assert isinstance(cpu, dict)
        total = sum(cpu.values()) or 1.0
        row["server_share"] = f"{cpu.get('temporal server', 0.0) / total:.0%}"
        floor = floors.get((row["workload"], row["tickets"]))
        if floor is not None:
            row["vs_floor"] = round(float(row["tickets_per_s"]) / float(floor["tickets_per_s"]), 2)
            row["cpu_vs_floor"] = round(
                float(row["cpu_s_per_ticket"]) / float(floor["cpu_s_per_ticket"]), 2
            )
