/** The shell: sign-in gate, navigation, and which screen the hash route selects. */
import { unwrap } from "./api/errors";
import { useAsync } from "./hooks/useAsync";
import { LoginPage } from "./pages/LoginPage";
import { OffersPage } from "./pages/OffersPage";
import { OptimizationDetailPage } from "./pages/OptimizationDetailPage";
import { OptimizationsPage } from "./pages/OptimizationsPage";
import { OptimizePage } from "./pages/OptimizePage";
import { PoliciesPage } from "./pages/PoliciesPage";
import { ForecastsPage } from "./pages/ForecastsPage";
import { GpusPage } from "./pages/GpusPage";
import { DeploymentDetailPage, DeploymentsPage } from "./pages/DeploymentsPage";
import { NodesPage } from "./pages/NodesPage";
import { SpendPage } from "./pages/SpendPage";
import { PricesPage } from "./pages/PricesPage";
import { href, useRoute } from "./router";
import { useCredential, useServices } from "./services";

const NAV = [
  { path: "/offers", label: "Offers" },
  { path: "/prices", label: "Prices" },
  { path: "/gpus", label: "GPUs" },
  { path: "/forecasts", label: "Forecasts" },
  { path: "/optimize", label: "Optimize" },
  { path: "/optimizations", label: "Optimizations" },
  { path: "/policies", label: "Policies" },
  { path: "/deployments", label: "Deployments" },
  { path: "/spend", label: "Spend" },
  { path: "/nodes", label: "Nodes" },
];

function Screen({ route }: { route: string[] }) {
  const [first, second] = route;
  if (first === "optimizations" && second) return <OptimizationDetailPage key={second} id={second} />;
  if (first === "optimizations") return <OptimizationsPage />;
  if (first === "optimize") return <OptimizePage />;
  if (first === "policies") return <PoliciesPage />;
  if (first === "prices") return <PricesPage />;
  if (first === "gpus") return <GpusPage />;
  if (first === "forecasts") return <ForecastsPage />;
  if (first === "nodes") return <NodesPage />;
  if (first === "deployments" && second) return <DeploymentDetailPage key={second} id={second} />;
  if (first === "deployments") return <DeploymentsPage />;
  if (first === "spend") return <SpendPage />;
  return <OffersPage />;
}

function Who() {
  const { api, auth } = useServices();
  const me = useAsync(async () => unwrap(await api.GET("/auth/me")), []);
  return (
    <div className="who">
      {me.data && (
        <span className="muted">
          {me.data.actor} · {me.data.role}
        </span>
      )}
      <button type="button" className="link" onClick={() => auth.signOut()}>
        Sign out
      </button>
    </div>
  );
}

export function App() {
  const credential = useCredential();
  const route = useRoute();
  if (!credential) return <LoginPage />;
  const current = `/${route[0] ?? "offers"}`;
  return (
    <div className="app">
      <header>
        <span className="brand">CloudArb</span>
        <nav>
          {NAV.map((n) => (
            <a key={n.path} href={href(n.path)} className={current === n.path ? "active" : undefined}>
              {n.label}
            </a>
          ))}
        </nav>
        <Who />
      </header>
      <main>
        <Screen route={route} />
      </main>
    </div>
  );
}
