/** Sign in with e-mail and password (JWT), or paste an API key. */
import { useState, type FormEvent } from "react";
import { messageOf, unwrap } from "../api/errors";
import { ErrorBanner } from "../components/common";
import { useServices } from "../services";

export function LoginPage() {
  const { publicApi, api, auth } = useServices();
  const [mode, setMode] = useState<"password" | "key">("password");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      if (mode === "password") {
        auth.signInWithTokens(unwrap(await publicApi.POST("/auth/login", { body: { email, password } })));
      } else {
        auth.signInWithApiKey(key);
        // Check the key now so a typo fails here rather than on the first screen.
        const me = await api.GET("/auth/me");
        if (!me.data) {
          auth.signOut();
          unwrap(me);
        }
      }
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="login">
      <form onSubmit={(e) => void submit(e)} aria-label="sign in">
        <h1>CloudArb</h1>
        <div className="tabs" role="tablist">
          <button type="button" role="tab" aria-selected={mode === "password"} onClick={() => setMode("password")}>
            E-mail
          </button>
          <button type="button" role="tab" aria-selected={mode === "key"} onClick={() => setMode("key")}>
            API key
          </button>
        </div>
        <ErrorBanner message={error} />
        {mode === "password" ? (
          <>
            <label className="field">
              <span>E-mail</span>
              <input type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
            </label>
            <label className="field">
              <span>Password</span>
              <input type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
            </label>
          </>
        ) : (
          <label className="field">
            <span>API key</span>
            <input required placeholder="ca_…" value={key} onChange={(e) => setKey(e.target.value)} />
          </label>
        )}
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </div>
  );
}
