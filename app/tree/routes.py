from flask_login import current_user, login_required

from app.autocommit import autocommit
from app.services.network.downline import affiliate_scope
from app.tree import bp
from app.tree.views import TreeLinks, show_search, show_tree

_LINKS = TreeLinks("tree.network", "tree.search", "Your network")


@bp.get("/network")
@autocommit
@login_required
def network():
    return show_tree(affiliate_scope(current_user.id), _LINKS)


@bp.get("/network/search")
@autocommit
@login_required
def search():
    return show_search(affiliate_scope(current_user.id), _LINKS)
