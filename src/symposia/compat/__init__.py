"""Drop-in surfaces for the systems Symposia replaces (docs/seeds.md): each module
translates one system's documented API onto Symposia's own services, nothing more."""
