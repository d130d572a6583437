{
  description = "covim-p2p: peer-to-peer collaborative editing for Neovim";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      # `nix develop`, then `pytest`. nixpkgs' pycrdt/pynvim/trio versions float;
      # pyproject.toml pins the exact ones (scripts/setup.sh uses those).
      devShells = forAllSystems (pkgs:
        let
          ps = pkgs.python3.pkgs;
          pystun3 = ps.buildPythonPackage rec {
            pname = "pystun3";
            version = "2.0.0";
            pyproject = true;
            src = ps.fetchPypi {
              inherit pname version;
              hash = "sha256-mav+g99p/Q9ieOm+FFaCf6+55OJe/tgHTRW3VKybH+4=";
            };
            build-system = [ ps.setuptools ];
            doCheck = false; # its tests query public STUN servers
            pythonImportsCheck = [ "stun" ];
          };
          python = pkgs.python3.withPackages (p: [
            p.pycrdt p.pynvim p.trio pystun3 p.cryptography
            p.pytest p.pytest-timeout p.hypothesis
          ]);
        in
        {
          default = pkgs.mkShell {
            packages = [ python pkgs.neovim pkgs.nodejs pkgs.tmux ]
              ++ pkgs.lib.optionals pkgs.stdenv.isLinux [ pkgs.iproute2 pkgs.nftables pkgs.coturn ];
            shellHook = ''
              export PYTHONPATH="$PWD''${PYTHONPATH:+:$PYTHONPATH}"
              [ -d tests/yjs/node_modules ] || (cd tests/yjs && npm ci --no-audit --no-fund)
            '';
          };
        });
    };
}
