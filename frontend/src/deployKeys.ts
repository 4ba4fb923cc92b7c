/** A private key a deploy answer carried once (a generated SSH key), kept in this tab until dismissed. */
export function privateKeyStore(id: string) {
  const key = `cloudarb.deploy-key.${id}`;
  return {
    save: (value: string) => sessionStorage.setItem(key, value),
    load: () => sessionStorage.getItem(key),
    clear: () => sessionStorage.removeItem(key),
  };
}
