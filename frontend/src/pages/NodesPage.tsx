/**
 * The team's own GPU hosts (``GET /nodes``): status, heartbeats, free GPUs and price; one node's GPUs
 * (``GET /nodes/{id}``); the placement queue across nodes (``GET /nodes/placements``).
 */
import { unwrap } from "../api/errors";
import type { components } from "../api/schema";
import { ErrorBanner, StatusBadge } from "../components/common";
import { age, dateTime, money } from "../format";
import { useAsync } from "../hooks/useAsync";
import { href, useQueryParams } from "../router";
import { useServices } from "../services";

type Placement = components["schemas"]["PlacementOut"];

function sinceText(iso: string | null | undefined): string {
  return iso ? `${age((Date.now() - Date.parse(iso)) / 1000)} ago` : "never";
}

function NodeGpus({ id }: { id: string }) {
  const { api } = useServices();
  const node = useAsync(async () => unwrap(await api.GET("/nodes/{node_id}", { params: { path: { node_id: id } } })), [id]);
  if (node.error) return <ErrorBanner message={node.error} />;
  if (!node.data) return <p className="muted">Loading…</p>;
  return (
    <div className="chart-panel">
      <h3>
        GPUs of {node.data.name} <span className="muted">({node.data.hostname})</span>
      </h3>
      <div className="scroll">
        <table className="data" aria-label="node GPUs">
          <thead>
            <tr>
              <th className="num">Index</th>
              <th>Model</th>
              <th className="num">Memory</th>
              <th>MIG</th>
              <th>UUID</th>
              <th>In use by</th>
            </tr>
          </thead>
          <tbody>
            {node.data.gpus.map((g) => (
              <tr key={g.uuid} className={g.present ? undefined : "muted"}>
                <td className="num">{g.index}</td>
                <td>{g.model || g.name}</td>
                <td className="num">{Math.round(g.memory_total_mib / 1024)} GB</td>
                <td>{g.mig_enabled ? g.mig_profile ?? "on" : "—"}</td>
                <td>
                  <code>{g.uuid}</code>
                </td>
                <td>{g.placement_id ? <code>{g.placement_id}</code> : "free"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function PlacementQueue() {
  const { api } = useServices();
  const [params, setParams] = useQueryParams();
  const ended = params.get("ended") === "1";
  const queue = useAsync(async () => unwrap(await api.GET("/nodes/placements", { params: { query: { include_ended: ended } } })), [ended]);
  const rows: Placement[] = queue.data ?? [];
  return (
    <div className="chart-panel">
      <h3>Placement queue</h3>
      <label className="check">
        <input type="checkbox" checked={ended} onChange={(e) => setParams({ ...Object.fromEntries(params), ended: e.target.checked ? "1" : "" })} />
        Include ended placements
      </label>
      <ErrorBanner message={queue.error} />
      <div className="scroll">
        <table className="data" aria-label="placement queue">
          <thead>
            <tr>
              <th className="num">#</th>
              <th>State</th>
              <th>Health</th>
              <th>Node</th>
              <th>GPUs</th>
              <th>Image</th>
              <th className="num">Priority</th>
              <th>Queued</th>
              <th>Starts / started</th>
              <th className="num">$/hour</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((p) => (
              <tr key={p.id}>
                <td className="num">{p.position ?? "—"}</td>
                <td>
                  <StatusBadge status={p.state} />
                  {p.flagged && <span className="stale"> {p.flagged}</span>}
                  {p.error && <span className="field-error"> {p.error}</span>}
                </td>
                <td title={p.health_detail ?? undefined}>
                  {p.health ?? "—"}
                  {p.health === "healthy" && p.healthy_since && <span className="stale"> since {dateTime(p.healthy_since)}</span>}
                  {p.health && p.health !== "healthy" && p.health_detail && <span className="field-error"> {p.health_detail}</span>}
                </td>
                <td>{p.node_name}</td>
                <td>
                  {p.gpu_count} × {p.gpu_model}
                </td>
                <td>
                  <code>{p.image}</code>
                </td>
                <td className="num">{p.priority}</td>
                <td>{dateTime(p.queued_at)}</td>
                <td>{p.started_at ? dateTime(p.started_at) : p.estimated_start_at ? `≈ ${dateTime(p.estimated_start_at)}` : "—"}</td>
                <td className="num">{money(p.price_per_hour)}</td>
              </tr>
            ))}
            {queue.data && rows.length === 0 && (
              <tr>
                <td colSpan={10} className="empty">
                  No placements.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </div>
  );
}

export function NodesPage() {
  const { api } = useServices();
  const [params, setParams] = useQueryParams();
  const selected = params.get("node") ?? "";
  const nodes = useAsync(async () => unwrap(await api.GET("/nodes", {})), []);
  return (
    <section>
      <h1>Local nodes</h1>
      <ErrorBanner message={nodes.error} />
      {nodes.data && nodes.data.length === 0 && (
        <p className="muted">
          No nodes yet. Create a join token (<code>cloudarb nodes join-token</code>) and start the agent on a GPU host.
        </p>
      )}
      {nodes.data && nodes.data.length > 0 && (
        <div className="scroll">
          <table className="data" aria-label="nodes">
            <thead>
              <tr>
                <th>Name</th>
                <th>Status</th>
                <th>Site</th>
                <th className="num">GPUs free / total</th>
                <th className="num">$/GPU-hour</th>
                <th>Last heartbeat</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {nodes.data.map((n) => (
                <tr key={n.id}>
                  <td>
                    {n.name} <span className="muted">{n.hostname}</span>
                  </td>
                  <td>
                    <StatusBadge status={n.status} />
                    {n.drained && <span className="tag"> drained</span>}
                  </td>
                  <td>{n.site || "—"}</td>
                  <td className="num">
                    {n.gpus_free} / {n.gpus_total}
                  </td>
                  <td className="num">{money(n.price_per_gpu_hour, true)}</td>
                  <td title={n.last_heartbeat_at ?? ""}>{sinceText(n.last_heartbeat_at)}</td>
                  <td>
                    <a href={href("/nodes", { node: n.id })} onClick={(e) => { e.preventDefault(); setParams({ node: n.id }); }}>
                      GPUs
                    </a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {selected && <NodeGpus id={selected} />}
      <PlacementQueue />
    </section>
  );
}
