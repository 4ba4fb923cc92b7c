import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { apiBase, createApi, createPublicApi, refresherFor } from "./api/client";
import { App } from "./App";
import { AuthStore } from "./auth/store";
import { ServicesProvider, type Services } from "./services";
import "./styles.css";

function services(): Services {
  const baseUrl = apiBase();
  const publicApi = createPublicApi(baseUrl);
  const auth = new AuthStore(window.sessionStorage, refresherFor(publicApi));
  return { api: createApi(baseUrl, auth), publicApi, auth, baseUrl };
}

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <ServicesProvider services={services()}>
        <App />
      </ServicesProvider>
    </StrictMode>,
  );
}
