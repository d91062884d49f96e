// The token lives in sessionStorage (this tab only); the role from GET /api/me decides what is offered.

const KEY = 'binsight.token';

export function getToken() {
  return sessionStorage.getItem(KEY);
}

export function setToken(token) {
  sessionStorage.setItem(KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(KEY);
}

// Mirrors the server's roles (docs/contracts.md): the API refuses the rest anyway.
const ABILITIES = {
  admin: ['map', 'plan', 'manifest', 'cameras', 'label', 'models', 'commands', 'promote', 'reports'],
  operator: ['map', 'plan', 'manifest', 'cameras', 'models', 'commands', 'reports'],
  labeller: ['map', 'label'],
  // Drivers: the published plan's manifest of their own truck, nothing else (the server enforces it).
  driver: ['manifest'],
};

export function can(role, ability) {
  return (ABILITIES[role] || []).includes(ability);
}
