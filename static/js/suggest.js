// Person filters: as one types a name, offer the matching people in the box's <datalist>.
// Progressive enhancement: without JavaScript one types a full name or username and the
// server finds the person, so the page never has to list everyone.
document.querySelectorAll("input[data-suggest]").forEach((input) => {
  const list = document.getElementById(input.getAttribute("list"));
  const url = input.form.dataset.suggestUrl;
  let timer = null;
  let asked = "";
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const text = input.value.trim();
      if (!text || text === asked) return;
      asked = text;
      const params = new URLSearchParams({ kind: input.dataset.suggest, q: text });
      try {
        const response = await fetch(`${url}?${params}`, { headers: { Accept: "application/json" } });
        if (!response.ok) return;
        const { people } = await response.json();
        if (asked !== text) return; // a later keystroke asked again meanwhile
        list.replaceChildren(...people.map((person) => new Option(person.label, person.label)));
      } catch {
        // Offline or signed out: the box still takes a typed name.
      }
    }, 150);
  });
});
