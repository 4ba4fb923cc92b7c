/** The shell: sign-in gate, navigation, and which screen the hash route selects. */
import { lazy, Suspense } from "react";
import { unwrap } from "./api/errors";
import { useAsync } from "./hooks/useAsync";
import { LoginPage } from "./pages/LoginPage";
import { OffersPage } from "./pages/OffersPage";
import { OptimizationsPage } from "./pages/OptimizationsPage";
import { OptimizePage } from "./pages/OptimizePage";
import { DeploymentDetailPage, DeploymentsPage } from "./pages/DeploymentsPage";
import { NodesPage } from "./pages/NodesPage";
import { href, useRoute } from "./router";
import { useCredential, useServices } from "./services";

// The screens with charts load on first use: the chart library is most of the bundle, and the
// offers list (the first screen) and the forms do not need it (smaller first load on a phone).
const OptimizationDetailPage = lazy(() => import("./pages/OptimizationDetailPage").then((m) => ({ default: m.OptimizationDetailPage })));
const PoliciesPage = lazy(() => import("./pages/PoliciesPage").then((m) => ({ default: m.PoliciesPage })));
const PricesPage = lazy(() => import("./pages/PricesPage").then((m) => ({ default: m.PricesPage })));
const GpusPage = lazy(() => import("./pages/GpusPage").then((m) => ({ default: m.GpusPage })));
const ForecastsPage = lazy(() => import("./pages/ForecastsPage").then((m) => ({ default: m.ForecastsPage })));
const SpendPage = lazy(() => import("./pages/SpendPage").then((m) => ({ default: m.SpendPage })));

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
        <Suspense fallback={<p className="muted">Loading…</p>}>
          <Screen route={route} />
        </Suspense>
      </main>
    </div>
  );
}
