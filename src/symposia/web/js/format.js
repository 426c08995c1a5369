// Numbers as people read them: money as money, tokens counted.

/** US dollars: cents from a cent up ($1.25), two significant digits below ($0.0012),
 * "free" for exactly 0 (local and scripted models), as the exports write them. */
export function money(usd) {
  if (usd === 0) return "free";
  if (Math.abs(usd) >= 0.01) {
    return `$${usd.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  }
  const decimals = Math.min(8, 1 - Math.floor(Math.log10(Math.abs(usd))));
  return `$${usd.toFixed(decimals).replace(/0+$/, "")}`;
}

/** "120 tokens · $0.0012" for a turn's usage and cost (either may be missing). */
export function usageLine(usage, costUsd) {
  const parts = [];
  if (usage) {
    const tokens = usage.prompt_tokens + usage.completion_tokens;
    parts.push(`${tokens} tokens${usage.estimated ? " (estimated)" : ""}`);
  }
  if (typeof costUsd === "number") parts.push(money(costUsd));
  return parts.join(" · ");
}
