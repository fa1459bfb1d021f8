from flask import abort, render_template, request

from app.admin import bp
from app.extensions import db
from app.htmx import render
from app.models import User
from app.services.directory import find_users
from app.services.downline import admin_scope
from app.tree.views import TreeLinks, show_search, show_tree


@bp.get("/")
def index():
    return render_template("admin/index.html")


@bp.get("/users")
def users():
    query = request.args.get("q", "")
    return render("admin/users.html", "admin/_users.html", users=find_users(query), query=query)


def _user_links(user_id: str) -> TreeLinks:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return TreeLinks(
        "admin.user_network",
        "admin.user_network_search",
        f"{user.username}'s network",
        {"user_id": user.id},
    )


@bp.get("/users/<user_id>/network")
def user_network(user_id: str):
    links = _user_links(user_id)
    return show_tree(admin_scope(links.args["user_id"]), links)


@bp.get("/users/<user_id>/network/search")
def user_network_search(user_id: str):
    links = _user_links(user_id)
    return show_search(admin_scope(links.args["user_id"]), links)
