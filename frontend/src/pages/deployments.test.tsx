import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { beforeEach, describe, expect, it } from "vitest";
import { privateKeyStore } from "../deployKeys";
import { json, renderWith } from "../test/fakeApi";
import { FakeSocket, progress, status } from "../test/fakeSocket";
import { DeploymentDetailPage } from "./DeploymentsPage";

const deployment = {
  id: "d1", name: "fleet", status: "deploying", optimization_id: "opt1", job_id: "j9", created_at: "2026-01-01T10:00:00Z",
  expires_at: "2026-01-01T14:00:00Z", latest_expiry: null, end_reason: null, rate_per_hour: 12.5, cost_so_far: 0.42, ssh_public_key: null,
  lines: [],
  attempts: [{ at: "2026-01-01T10:00:01Z", attempt: 1, line: 0, replica: 0, offer_key: "k", provider: "vast", outcome: "no_capacity", reason: "sold out" }],
  instances: [{
    id: "i1", key: "ca-d1-0-0", line: 0, replica: 0, attempt: 2, provider: "runpod", provider_id: "rp-1", offer_key: "k2", region: "US",
    instance_type: "8x H100", gpu_model: "H100 SXM", gpu_count: 8, spot: false, state: "running", state_at: "2026-01-01T10:02:00Z",
    address: "203.0.113.7", ssh_port: 22, ssh_command: "ssh root@203.0.113.7", price_per_hour: 12.5, reported_rate: null,
    cost_so_far: 0.42, expires_at: "2026-01-01T14:00:00Z", end_reason: null, last_error: null, destroy_attempts: 0,
  }],
};

describe("DeploymentDetailPage", () => {
  beforeEach(() => FakeSocket.reset());

  it("shows the health a local instance's agent reported, with the failure's reason on hover", async () => {
    const local = {
      ...deployment.instances[0], id: "i2", key: "ca-d1-1-0", line: 1, provider: "local", ssh_command: null, address: "gpu-a",
      health: "unhealthy", health_detail: "GET http://127.0.0.1:43000/health answered HTTP 500", healthy_since: null,
    };
    renderWith(<DeploymentDetailPage id="d1" />, () => json({ ...deployment, instances: [local] }));
    const table = await screen.findByRole("table", { name: "instances" });
    const cell = within(table).getByText(/· unhealthy/);
    expect(cell.getAttribute("title")).toBe("GET http://127.0.0.1:43000/health answered HTTP 500");
  });

  it("shows instances and attempts, follows the steps live, shows a generated key once, and extends", async () => {
    privateKeyStore("d1").save("-----BEGIN OPENSSH PRIVATE KEY-----");
    const { requests } = renderWith(<DeploymentDetailPage id="d1" />, (req) =>
      req.method === "POST" ? json({ ...deployment, expires_at: "2026-01-01T16:00:00Z" }) : json(deployment));
    const table = await screen.findByRole("table", { name: "instances" });
    expect(within(table).getByText("ssh root@203.0.113.7")).toBeTruthy();
    expect(screen.getByText("sold out")).toBeTruthy();
    expect(screen.getByText(/BEGIN OPENSSH/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "I saved it" }));
    expect(privateKeyStore("d1").load()).toBeNull();

    await waitFor(() => expect(FakeSocket.instances.length).toBe(1));
    const socket = FakeSocket.last();
    expect(new URL(socket.url).pathname).toBe("/api/ws/deployments/d1");
    act(() => {
      socket.open();
      socket.send(progress(1, "creating", 40, { message: "runpod: instance created" }));
      socket.send(status(2, "running", false));
    });
    await screen.findByText(/40/);

    fireEvent.change(screen.getByLabelText("hours to extend"), { target: { value: "2" } });
    fireEvent.click(screen.getByRole("button", { name: "Extend" }));
    await waitFor(() => expect(requests.some((r) => r.method === "POST")).toBe(true));
    const post = requests.find((r) => r.method === "POST")!;
    expect(new URL(post.url).pathname).toBe("/api/deployments/d1/extend");
    expect(await post.json()).toEqual({ hours: 2 });
  });

  describe("stop and start", () => {
    const running = { ...deployment, status: "running" };
    const base = { ...deployment.instances[0], can_stop: true, desired_state: null, paused_since: null, paused_seconds: 0 };
    const accepted = (action: string, instances: string[]) =>
      json({ id: "d1", job_id: "j-ss", action, status: "queued", instances, websocket_url: "/ws/deployments/d1" }, 202);

    it("turns Stop and Start off with the reason in words when no instance can stop (Lambda)", async () => {
      const lambda = { ...base, id: "i3", provider: "lambda", can_stop: false };
      renderWith(<DeploymentDetailPage id="d1" />, () => json({ ...running, instances: [lambda] }));
      const stop = await screen.findByRole("button", { name: "Stop" });
      const start = screen.getByRole("button", { name: "Start" });
      expect((stop as HTMLButtonElement).disabled).toBe(true);
      expect((start as HTMLButtonElement).disabled).toBe(true);
      expect(stop.getAttribute("title")).toBe("lambda instances cannot be stopped and started, only destroyed");
      expect(screen.getByText(/Stop and start unavailable: lambda instances cannot be stopped/)).toBeTruthy();
      expect(screen.queryByRole("columnheader", { name: "Stop / start" })).toBeNull();
    });

    it("stops every instance, follows the job, and shows the server's refusal when it says no", async () => {
      let refuse = false;
      const { requests } = renderWith(<DeploymentDetailPage id="d1" />, (req, url) => {
        if (req.method !== "POST") return json({ ...running, instances: [base] });
        if (refuse)
          return json({ error: { code: "conflict", message: "deployment d1 has a job in progress (j7); stop it when that job ends" } }, 409);
        return accepted(url.pathname.endsWith("/stop") ? "stop" : "start", ["i1"]);
      });
      const stop = await screen.findByRole("button", { name: "Stop" });
      expect((screen.getByRole("button", { name: "Start" }) as HTMLButtonElement).disabled).toBe(true);
      expect(screen.getByRole("button", { name: "Start" }).getAttribute("title")).toBe("no stopped instance to start");
      fireEvent.click(stop);
      await waitFor(() => expect(requests.some((r) => r.method === "POST")).toBe(true));
      const post = requests.find((r) => r.method === "POST")!;
      expect(new URL(post.url).pathname).toBe("/api/deployments/d1/stop");
      expect(await post.text()).toBe(""); // no body: every instance
      await waitFor(() => expect(FakeSocket.instances.length).toBe(1));
      expect(new URL(FakeSocket.last().url).pathname).toBe("/api/ws/deployments/d1");
      expect(screen.queryByRole("alert")).toBeNull();

      refuse = true;
      fireEvent.click(screen.getByRole("button", { name: "Stop" }));
      const alert = await screen.findByRole("alert");
      expect(alert.textContent).toBe("deployment d1 has a job in progress (j7); stop it when that job ends");
    });

    it("starts one stopped instance from its row and shows its pause; leaves the ones that cannot stop out", async () => {
      const stopped = { ...base, state: "stopped", paused_since: "2026-01-01T11:00:00Z", paused_seconds: 5400 };
      const stopping = { ...base, id: "i4", replica: 1, state: "stopping", desired_state: "stopped" };
      const lambda = { ...base, id: "i5", line: 1, provider: "lambda", can_stop: false };
      const { requests } = renderWith(<DeploymentDetailPage id="d1" />, (req, url) =>
        req.method === "POST" ? accepted("start", ["i1"]) : url.pathname.endsWith("/d1") ? json({ ...running, instances: [stopped, stopping, lambda] }) : json({}));
      const table = await screen.findByRole("table", { name: "instances" });
      expect(within(table).getByText(/paused since .* · 2h unbilled/)).toBeTruthy();
      expect(within(table).getByText(/· stopped asked/)).toBeTruthy();
      expect(within(table).getByRole("columnheader", { name: "Stop / start" })).toBeTruthy();
      expect(within(table).queryByRole("button", { name: "stop instance 1.0" })).toBeNull();
      expect(screen.getByText(/1 of 3 instances cannot stop \(lambda instances/)).toBeTruthy();
      expect((screen.getByRole("button", { name: "Stop" }) as HTMLButtonElement).disabled).toBe(true);

      fireEvent.click(within(table).getByRole("button", { name: "start instance 0.0" }));
      await waitFor(() => expect(requests.filter((r) => r.method === "POST")).toHaveLength(1));
      const one = requests.find((r) => r.method === "POST")!;
      expect(new URL(one.url).pathname).toBe("/api/deployments/d1/start");
      expect(await one.json()).toEqual({ instances: ["i1"] });

      fireEvent.click(screen.getByRole("button", { name: "Start" }));
      await waitFor(() => expect(requests.filter((r) => r.method === "POST")).toHaveLength(2));
      const all = requests.filter((r) => r.method === "POST")[1]!;
      expect(await all.json()).toEqual({ instances: ["i1", "i4"] });
    });
  });
});
