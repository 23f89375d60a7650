// A real OpenID Connect provider for the tests (npm `oidc-provider`), standing in for
// Pro Santé Connect: one confidential client (Bioviewer), PKCE required, and accounts whose
// userinfo carries the claims Bioviewer maps (names, national id, profession, structure).
//
//   node oidc/provider.mjs PORT REDIRECT_URI
// Prints "ready <issuer>" when listening. Its development login page accepts any login; the
// login chosen is the account's subject.
import Provider from "oidc-provider";

const [port, redirectUri] = process.argv.slice(2);
if (!port || !redirectUri) {
  console.error("usage: provider.mjs PORT REDIRECT_URI");
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

// Professionals known to the provider, by login (the subject).
const professionals = {
  "psc-urgentiste": {
    given_name: "Léa",
    family_name: "MOREAU",
    SubjectNameID: "810000000045",
    SubjectRefPro: { codeCivilite: "DR", exercices: [{ codeProfession: "10", codeCategorieProfessionnelle: "C", activities: [{ raisonSocialeSite: "Centre hospitalier de test", identifiantStructure: "R10000000001" }] }] },
  },
};

const configuration = {
  clients: [
    {
      client_id: "bioviewer",
      client_secret: "bioviewer-test-secret",
      redirect_uris: [redirectUri],
      response_types: ["code"],
      grant_types: ["authorization_code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  pkce: { required: () => true },
  claims: {
    openid: ["sub"],
    profile: ["given_name", "family_name"],
    scope_all: ["SubjectNameID", "SubjectRefPro"],
  },
  scopes: ["openid", "profile", "scope_all"],
  acrValues: ["eidas1", "eidas2"],
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["test-only-cookie-key"] },
  async findAccount(_ctx, sub) {
    const known = professionals[sub] ?? { given_name: "Inconnu", family_name: sub.toUpperCase() };
    return { accountId: sub, async claims() { return { sub, ...known }; } };
  },
};

const provider = new Provider(issuer, configuration);
provider.proxy = false;
provider.listen(Number(port), "127.0.0.1", () => console.log(`ready ${issuer}`));
